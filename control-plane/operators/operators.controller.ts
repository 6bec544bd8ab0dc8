import { Body, Controller, Delete, Get, Param, Patch, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { ErrorCode } from '../../common/error-codes';
import { AdminAuthGuard } from '../common/admin-auth.guard';
import { ApiErrors } from '../common/api-docs';
import { Permission } from '../common/permissions';
import {
  AuditLogView, AuditQuery, auditEntryView, CreateOperatorDto, CreateOperatorTokenDto, IssuedOperatorTokenView, OperatorListView, OperatorTokenListView,
  operatorTokenView, OperatorTokenView, operatorView, OperatorView, UpdateOperatorDto,
} from './dto/operator.dto';
import { OperatorsService } from './operators.service';

const ID = { name: 'id', format: 'uuid', description: 'Operator id' };
const TOKEN_ID = { name: 'tokenId', format: 'uuid', description: 'Token id' };
const DEFAULT_TOKEN_DAYS = 90;

/** Named operators, their roles and personal tokens (admin); anyone may manage their own tokens. */
@ApiTags('operators')
@ApiBearerAuth()
@ApiErrors()
@UseGuards(AdminAuthGuard)
@Controller('v1/operators')
export class OperatorsController {
  constructor(private readonly operators: OperatorsService) {}

  @Post()
  @Permission('operators:write')
  @ApiOperation({ summary: 'Create an operator (email, name, role); they sign in with a token issued next' })
  @ApiCreatedResponse({ type: OperatorView })
  @ApiErrors({ auth: false, body: true, conflict: [ErrorCode.CONFLICT] })
  async create(@Body() dto: CreateOperatorDto): Promise<OperatorView> {
    return operatorView(await this.operators.create(dto));
  }

  @Get()
  @Permission('operators:read')
  @ApiOperation({ summary: 'List operators' })
  @ApiOkResponse({ type: OperatorListView })
  async list(): Promise<OperatorListView> {
    return { items: (await this.operators.list()).map(operatorView) };
  }

  @Get(':id')
  @Permission('operators:read', { self: true })
  @ApiOperation({ summary: 'One operator (anyone may read their own)' })
  @ApiParam(ID)
  @ApiOkResponse({ type: OperatorView })
  @ApiErrors({ auth: false, notFound: [ErrorCode.NOT_FOUND] })
  async get(@Param('id') id: string): Promise<OperatorView> {
    return operatorView(await this.operators.get(id));
  }

  @Patch(':id')
  @Permission('operators:write')
  @ApiOperation({ summary: 'Change role or name, or disable (revokes every token of theirs at once) / enable' })
  @ApiParam(ID)
  @ApiOkResponse({ type: OperatorView })
  @ApiErrors({ auth: false, body: true, notFound: [ErrorCode.NOT_FOUND] })
  async update(@Param('id') id: string, @Body() dto: UpdateOperatorDto): Promise<OperatorView> {
    return operatorView(await this.operators.update(id, dto));
  }

  @Post(':id/tokens')
  @Permission('operators:write', { self: true })
  @ApiOperation({ summary: 'Issue a personal API token (anyone may issue their own); the token is in this response only' })
  @ApiParam(ID)
  @ApiCreatedResponse({ type: IssuedOperatorTokenView })
  @ApiErrors({ auth: false, body: true, notFound: [ErrorCode.NOT_FOUND], conflict: [ErrorCode.CONFLICT] })
  async issueToken(@Param('id') id: string, @Body() dto: CreateOperatorTokenDto): Promise<IssuedOperatorTokenView> {
    const { record, token } = await this.operators.issueToken(id, { name: dto.name, expiresInDays: dto.expiresInDays ?? DEFAULT_TOKEN_DAYS });
    return { ...operatorTokenView(record), token };
  }

  @Get(':id/tokens')
  @Permission('operators:read', { self: true })
  @ApiOperation({ summary: "List an operator's tokens by prefix, never the secret (anyone may list their own)" })
  @ApiParam(ID)
  @ApiOkResponse({ type: OperatorTokenListView })
  @ApiErrors({ auth: false, notFound: [ErrorCode.NOT_FOUND] })
  async tokens(@Param('id') id: string): Promise<OperatorTokenListView> {
    const now = new Date();
    return { items: (await this.operators.tokens(id)).map((t) => operatorTokenView(t, now)) };
  }

  @Delete(':id/tokens/:tokenId')
  @Permission('operators:write', { self: true })
  @ApiOperation({ summary: 'Revoke a token: refused from the next request on (anyone may revoke their own)' })
  @ApiParam(ID)
  @ApiParam(TOKEN_ID)
  @ApiOkResponse({ type: OperatorTokenView, description: 'The token, revoked (revoking a revoked token changes nothing)' })
  @ApiErrors({ auth: false, notFound: [ErrorCode.NOT_FOUND] })
  async revokeToken(@Param('id') id: string, @Param('tokenId') tokenId: string): Promise<OperatorTokenView> {
    return operatorTokenView(await this.operators.revokeToken(id, tokenId));
  }
}

/** The fleet-wide audit log with who did each thing (operator management rows have no tenant). */
@ApiTags('operators')
@ApiBearerAuth()
@ApiErrors()
@UseGuards(AdminAuthGuard)
@Controller('v1/audit')
export class AuditController {
  constructor(private readonly operators: OperatorsService) {}

  @Get()
  @Permission('audit:read')
  @ApiOperation({ summary: 'Audit log, newest first, each entry with its actor; filter by operator or tenant' })
  @ApiOkResponse({ type: AuditLogView })
  @ApiErrors({ auth: false, validation: true })
  async list(@Query() q: AuditQuery): Promise<AuditLogView> {
    const items = await this.operators.auditLog({ limit: q.limit ?? 100, beforeId: q.before, operatorId: q.operator, tenantId: q.tenant });
    return { items: items.map(auditEntryView) };
  }
}
