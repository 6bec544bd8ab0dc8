import { Body, Controller, Delete, Get, Param, ParseUUIDPipe, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';
import { AdminAuthGuard } from '../common/admin-auth.guard';
import { ApiErrors } from '../common/api-docs';
import { Permission } from '../common/permissions';
import { ApiKeysService } from './api-keys.service';
import { ApiKeyListView, apiKeyView, ApiKeyView, CreateApiKeyDto, IssuedApiKeyView, RotateApiKeyDto } from './dto/api-key.dto';

const KEY_ID = { name: 'keyId', format: 'uuid', description: 'API key id (a non-uuid is 400 VALIDATION_FAILED)' };

@ApiTags('api-keys')
@ApiBearerAuth()
@ApiErrors()
@ApiParam({ name: 'id', description: 'Tenant id or slug' })
@UseGuards(AdminAuthGuard)
@Controller('v1/tenants/:id/api-keys')
export class ApiKeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @Post()
  @ApiOperation({ summary: 'Issue an API key for the tenant runtime; the key is in this response only' })
  @ApiCreatedResponse({ type: IssuedApiKeyView })
  @ApiErrors({ auth: false, body: true, notFound: [ErrorCode.TENANT_NOT_FOUND], conflict: [ErrorCode.CONFLICT] })
  @Permission('api-keys:write')
  async issue(@Param('id') tenant: string, @Body() dto: CreateApiKeyDto): Promise<IssuedApiKeyView> {
    const expiresAt = dto.expiresAt ? new Date(dto.expiresAt) : null;
    if (expiresAt && expiresAt.getTime() <= Date.now()) throw new SiloError(ErrorCode.VALIDATION_FAILED, 'expiresAt must be in the future', 400);
    const { record, key } = await this.keys.issue(tenant, { name: dto.name, expiresAt });
    return { ...apiKeyView(record), key };
  }

  @Get()
  @ApiOperation({ summary: 'List the tenant\'s keys: prefix and metadata, never the secret' })
  @ApiOkResponse({ type: ApiKeyListView })
  @ApiErrors({ auth: false, notFound: [ErrorCode.TENANT_NOT_FOUND] })
  @Permission('api-keys:read')
  async list(@Param('id') tenant: string): Promise<ApiKeyListView> {
    const now = new Date();
    return { items: (await this.keys.list(tenant)).map((k) => apiKeyView(k, now)) };
  }

  @Post(':keyId/rotate')
  @ApiOperation({ summary: 'Issue a replacement key (same name); the old one stops working now or after graceSeconds' })
  @ApiParam(KEY_ID)
  @ApiCreatedResponse({ type: IssuedApiKeyView })
  @ApiErrors({ auth: false, body: true, notFound: [ErrorCode.TENANT_NOT_FOUND, ErrorCode.NOT_FOUND], conflict: [ErrorCode.CONFLICT] })
  @Permission('api-keys:write')
  async rotate(@Param('id') tenant: string, @Param('keyId', new ParseUUIDPipe()) keyId: string, @Body() dto: RotateApiKeyDto): Promise<IssuedApiKeyView> {
    const { record, key, replaced } = await this.keys.rotate(tenant, keyId, dto.graceSeconds ?? 0);
    return { ...apiKeyView(record), key, replaces: replaced.id };
  }

  @Delete(':keyId')
  @ApiOperation({ summary: 'Revoke a key: every runtime replica refuses it within a second' })
  @ApiParam(KEY_ID)
  @ApiOkResponse({ type: ApiKeyView, description: 'The key, revoked (revoking a revoked key changes nothing)' })
  @ApiErrors({ auth: false, validation: true, notFound: [ErrorCode.TENANT_NOT_FOUND, ErrorCode.NOT_FOUND] })
  @Permission('api-keys:write')
  async revoke(@Param('id') tenant: string, @Param('keyId', new ParseUUIDPipe()) keyId: string): Promise<ApiKeyView> {
    return apiKeyView(await this.keys.revoke(tenant, keyId));
  }
}
