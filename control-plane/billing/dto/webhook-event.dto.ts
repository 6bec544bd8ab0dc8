import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, IsUUID, Max, MaxLength, Min } from 'class-validator';

export class ListWebhookEventsQuery {
  @ApiPropertyOptional({ default: 50, maximum: 500 }) @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(500) limit?: number;
  @ApiPropertyOptional({ example: 'sub_1QAbCdEfGhIjKlMn', description: 'Only events of this Stripe subscription' }) @IsOptional() @IsString() @MaxLength(255) subscription?: string;
  @ApiPropertyOptional({ description: 'Only events applied to this tenant (uuid)' }) @IsOptional() @IsUUID() tenant?: string;
  @ApiPropertyOptional({ example: 'customer.subscription.updated' }) @IsOptional() @IsString() @MaxLength(255) type?: string;
}
